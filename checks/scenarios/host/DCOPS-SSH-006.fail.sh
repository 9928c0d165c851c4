# sshd: ClientAliveInterval 0 (a drop-in read before the hardening one)
sshd_set 'ClientAliveInterval 0'
