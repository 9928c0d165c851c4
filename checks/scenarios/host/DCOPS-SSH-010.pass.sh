# sshd: the rolled-out hardening, with the compliant 'LogLevel INFO' set explicitly
sshd_set 'LogLevel INFO'
