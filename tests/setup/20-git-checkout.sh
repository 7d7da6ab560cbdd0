# git-checkout: Debian's git makes the test repositories, serves them (git-http-backend as a
# CGI program behind the test HTTP server, `git daemon` for git://) and is the reference
# (`git clone --depth 1`) every checkout is compared with and bench/git-checkout.sh times;
# util-linux's setpriv runs the checkout as 65532; openssl makes the test certificate.
need_packages git util-linux openssl time
