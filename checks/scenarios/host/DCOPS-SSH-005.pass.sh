# sshd: the rolled-out hardening, with the compliant 'AllowUsers dcops' set explicitly
sshd_set 'AllowUsers dcops'
