# sshd: PermitEmptyPasswords yes (a drop-in read before the hardening one)
sshd_set 'PermitEmptyPasswords yes'
