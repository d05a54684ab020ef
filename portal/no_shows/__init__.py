"""No-show and cancellation policy: classification, fees, outreach, letters and review tasks.

``facts`` reads the records the pure rules (portal.rules.no_shows, portal.rules.no_show_fees)
need, in a fixed number of queries; ``views`` holds the pages; writes go through
``portal.services.no_shows``.
"""
