"""Two 837P exports at the same instant never get the same ISA13 control number (a clearinghouse
rejects a repeated interchange number as a duplicate)."""
from __future__ import annotations

import threading
import time

from portal.services.claim_exports import X12_ENDPOINT, next_interchange_number as _next_interchange_number
from portal.extensions import db
from portal.models import AccessLogEntry


def test_concurrent_exports_get_distinct_control_numbers(app, world):
    user_id = world.billing.id
    db.session.remove()
    got, errors = [], []
    start = threading.Barrier(4)

    def export():
        try:
            with app.app_context():
                start.wait()
                number = _next_interchange_number()
                time.sleep(0.05)  # build the file while holding the number, as the view does
                db.session.add(AccessLogEntry(user_id=user_id, role="billing", method="EXPORT",
                                              path=f"EXPORT 837P ISA13={number:09d}", endpoint=X12_ENDPOINT,
                                              patient_id=None, status_code=200, remote_addr="127.0.0.1"))
                db.session.commit()
                got.append(number)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(got) == [1, 2, 3, 4]
