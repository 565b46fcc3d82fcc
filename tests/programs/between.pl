% between/3 and succ_or_zero style arithmetic in rules.
0.5::coin(N) :- between(1, 4, N).
heads(C) :- findall(N, coin(N), L), length(L, C).
query(heads(_)).
