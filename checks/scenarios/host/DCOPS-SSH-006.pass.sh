# sshd: the rolled-out hardening, with compliant 'ChannelTimeout session:*=600s' 'UnusedConnectionTimeout 600s' set explicitly
sshd_set 'ChannelTimeout session:*=600s' 'UnusedConnectionTimeout 600s'
