# render-config's fidelity corpus (tests/render_config.rs, tests/fixtures/render-config/fidelity)
# compares initbox with Python's jinja2 plus ansible-core's filter and test plugins: the exact
# version the corpus was checked against, so a new Ansible release cannot change the reference.
need_pip jinja2 "ansible-core==2.19.14"
