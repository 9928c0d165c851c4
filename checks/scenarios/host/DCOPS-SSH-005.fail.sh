# sshd: AllowUsers dcops intruder (a drop-in read before the hardening one)
sshd_set 'AllowUsers dcops intruder'
