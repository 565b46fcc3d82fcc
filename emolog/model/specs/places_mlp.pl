% The seed system's later best: one MLP over the scene backbone's own class distribution (the
% 365 Places365 scene categories from its classifier head on the cached features) and the
% faces' expression distributions, inside a program with an Emo8 query. The program is one
% neural predicate; the spec (places_mlp.toml) binds fusion_net to a trainable head.

nn(fusion_net, [X], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: fused_emotion(X, E).

emotion(X, E) :- fused_emotion(X, E).

query(emotion(X, joy)). query(emotion(X, trust)). query(emotion(X, fear)). query(emotion(X, surprise)).
query(emotion(X, sadness)). query(emotion(X, disgust)). query(emotion(X, anger)). query(emotion(X, anticipation)).
