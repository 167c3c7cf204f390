# systemd-analyze, for tests/tests/services.rs (`systemd-analyze verify` on the unit in
# deploy/systemd); sourced by tests/run, never run alone.
apt_install systemd-analyze systemd
