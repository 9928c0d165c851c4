# a named administrator of the province file is taken out of dcops-admins (their account no longer gets the administrators' rules)
a=$(ls /etc/ssh/dcops-admins/ | sed -n 's/\.keys$//p' | head -1)
[ -n "$a" ]
gpasswd -d "$a" dcops-admins >/dev/null
