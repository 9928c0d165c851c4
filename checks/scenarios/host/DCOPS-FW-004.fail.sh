# SSH accepted from any source (rule inserted before the management one)
nft insert rule inet dcops input tcp dport 22 accept
