# render-config: GNU envsubst (Debian gettext-base) and Python's jinja2 (PyPI) are the references
# the compatibility tests and the benchmark compare against; util-linux gives `unshare` for the
# mount-point test.
need_packages gettext-base util-linux
need_pip jinja2
