# sshd: the rolled-out hardening, with the compliant 'X11Forwarding no' set explicitly
sshd_set 'X11Forwarding no'
