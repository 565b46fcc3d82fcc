% Context-to-emotion probabilistic facts, a prior table, negation of dominance.
0.5::scene(beach); 0.3::scene(office); 0.2::scene(funeral).
prior(beach, happy, 0.7). prior(beach, sad, 0.1).
prior(office, happy, 0.3). prior(office, sad, 0.3).
prior(funeral, happy, 0.05). prior(funeral, sad, 0.9).
P::context_em(E) :- scene(S), prior(S, E, P).
0.4::context_dom.
0.6::face(happy); 0.4::face(sad).
emotion(E) :- context_dom, context_em(E).
emotion(E) :- \+ context_dom, face(E).
query(emotion(happy)). query(emotion(sad)).
