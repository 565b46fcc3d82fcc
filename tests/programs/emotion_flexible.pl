% Flexible strength probability, neural-like facts, and negation (the issue's context_dom pattern).
strength(i1, 0). strength(i1, 3).
strength_prob(0, 0.1). strength_prob(3, 0.6).
0.7::strong(i1, 3); 0.3::strong(i1, 0).
P::context_dom(I) :- strong(I, S), strength_prob(S, P).
0.3::e(i1, face_happy).
answer(I, happy) :- context_dom(I).
answer(I, happy) :- \+ context_dom(I), e(I, face_happy).
query(answer(i1, happy)). query(context_dom(i1)).
