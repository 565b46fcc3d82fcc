% Probabilities exactly 0 and 1.
0.0::never. 1.0::always. 0.5::half.
x :- never, half.
y :- always, half.
z :- \+ never.
query(never). query(always). query(x). query(y). query(z).
