# PAM of sshd: the TOTP module made optional for accounts without a secret (nullok): a key alone would do
backup /etc/pam.d/sshd
sed -i 's/^\(auth .*pam_google_authenticator\.so\).*$/\1 nullok/' /etc/pam.d/sshd
grep -q 'pam_google_authenticator.so nullok' /etc/pam.d/sshd
