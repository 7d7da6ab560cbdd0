# render-config's fidelity corpus (tests/render_config.rs, tests/fixtures/render-config/fidelity)
# compares initbox with Python's jinja2 plus ansible-core's filter and test plugins: the exact
# version the corpus was checked against, so a new Ansible release cannot change the reference.
# password_hash needs passlib (ansible-core 2.19 has no other way); passlib 1.7.4 reads bcrypt
# 4.0.x (later bcrypt releases dropped what it looks for).
need_pip jinja2 "ansible-core==2.19.14" "passlib==1.7.4" "bcrypt==4.0.1"
