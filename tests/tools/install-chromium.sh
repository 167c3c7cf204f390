# Headless Chromium (Debian package chromium): opens the hub's status page in a real
# browser (tests/tests/status_page.rs). Sourced by tests/run.
apt_install chromium chromium
