# sshd: idle sessions and unused connections never time out (ChannelTimeout session=0, UnusedConnectionTimeout none, a drop-in read first)
sshd_set 'ChannelTimeout session=0' 'UnusedConnectionTimeout none'
