# sshd: the rolled-out hardening, with the compliant 'KbdInteractiveAuthentication no' set explicitly
sshd_set 'KbdInteractiveAuthentication no'
