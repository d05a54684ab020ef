"""Setting a clinic up without the demo: `flask setup init`, `flask setup apply FILE.yaml`."""
