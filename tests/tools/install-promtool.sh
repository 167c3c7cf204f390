# promtool (Debian package prometheus): checks /metrics output and the alert rules
# in deploy/prometheus (tests/tests/metrics.rs). Sourced by tests/run.
apt_install promtool prometheus
