# sshd: KbdInteractiveAuthentication yes (a drop-in read before the hardening one)
sshd_set 'KbdInteractiveAuthentication yes'
