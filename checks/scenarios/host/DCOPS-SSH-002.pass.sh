# sshd: the rolled-out hardening, with the compliant 'PasswordAuthentication no' set explicitly
sshd_set 'PasswordAuthentication no'
