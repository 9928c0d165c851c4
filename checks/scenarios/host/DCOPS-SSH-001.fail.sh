# sshd: PermitRootLogin yes (a drop-in read before the hardening one)
sshd_set 'PermitRootLogin yes'
