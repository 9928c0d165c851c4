# sshd: the rolled-out hardening, with the compliant 'PermitRootLogin no' set explicitly
sshd_set 'PermitRootLogin no'
