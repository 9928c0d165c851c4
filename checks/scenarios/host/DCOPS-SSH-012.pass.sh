# PAM of sshd as rolled out: every named administrator needs a TOTP code after the key
restore /etc/pam.d/sshd
grep -q '^auth *required *pam_google_authenticator.so$' /etc/pam.d/sshd
