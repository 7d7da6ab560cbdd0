# schedule: Python's croniter (PyPI) is the reference the cron parser is compared with
# (crates/cron/tests/croniter.rs); util-linux gives `unshare` for the PID 1 reaping test;
# busybox's crond is what bench/schedule.sh compares the sidecar with.
need_packages util-linux busybox
need_pip "croniter==7.0.0"
