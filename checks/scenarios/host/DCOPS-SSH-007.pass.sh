# sshd: the rolled-out hardening, with the compliant 'MaxAuthTries 2' set explicitly
sshd_set 'MaxAuthTries 2'
