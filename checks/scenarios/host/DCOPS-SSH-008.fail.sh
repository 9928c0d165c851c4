# sshd: X11Forwarding yes (a drop-in read before the hardening one)
sshd_set 'X11Forwarding yes'
