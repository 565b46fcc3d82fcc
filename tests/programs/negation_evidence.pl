% Negation together with evidence.
0.4::rain. 0.3::sprinkler.
dry :- \+ rain, \+ sprinkler.
wet :- \+ dry.
evidence(wet).
query(rain). query(sprinkler).
