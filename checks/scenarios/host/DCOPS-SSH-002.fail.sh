# sshd: PasswordAuthentication yes (a drop-in read before the hardening one)
sshd_set 'PasswordAuthentication yes'
