% findall/3 over probabilistic facts: a distribution over lists.
0.5::p(1). 0.4::p(2).
collected(L) :- findall(X, p(X), L).
query(collected(_)).
