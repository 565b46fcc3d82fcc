% sort/2, msort/2, length/2 on lists built from probabilistic facts.
0.5::v(3). 0.5::v(1). 0.5::v(2). 0.5::v(1).
sorted(S) :- findall(X, v(X), L), sort(L, S).
count(N) :- findall(X, v(X), L), length(L, N).
query(sorted(_)).
query(count(_)).
