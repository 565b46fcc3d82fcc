% Arity-0 rules over independent facts (noisy-or of two causes).
0.3::rain.
0.6::sprinkler.
wet :- rain.
wet :- sprinkler.
query(wet).
query(rain).
