# sshd: MaxAuthTries 10 (a drop-in read before the hardening one)
sshd_set 'MaxAuthTries 10'
