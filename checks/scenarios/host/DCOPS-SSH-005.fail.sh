# sshd: an account the province file does not name is allowed too (AllowUsers dcops dcops-audit intruder, a drop-in read first)
sshd_set 'AllowUsers dcops dcops-audit intruder'
