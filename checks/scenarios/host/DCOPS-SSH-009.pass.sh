# sshd: the rolled-out hardening, with the compliant 'Ciphers aes256-gcm@openssh.com,aes256-ctr' set explicitly
sshd_set 'Ciphers aes256-gcm@openssh.com,aes256-ctr'
