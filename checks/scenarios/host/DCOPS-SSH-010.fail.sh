# sshd: LogLevel QUIET (a drop-in read before the hardening one)
sshd_set 'LogLevel QUIET'
