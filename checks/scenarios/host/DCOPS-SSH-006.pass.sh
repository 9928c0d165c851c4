# sshd: the rolled-out hardening, with the compliant 'ClientAliveInterval 120' 'ClientAliveCountMax 3' set explicitly
sshd_set 'ClientAliveInterval 120' 'ClientAliveCountMax 3'
