# sshd: the rolled-out hardening, with the compliant 'PermitEmptyPasswords no' set explicitly
sshd_set 'PermitEmptyPasswords no'
