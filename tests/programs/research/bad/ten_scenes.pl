% Ten scene classes where the backbone has 365 (the bad-spec corpus).
nn(places, [I], S, [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9]) :: scene_class(I, S).
prior(s0, joy). prior(s1, trust). prior(s2, fear). prior(s3, surprise). prior(s4, sadness).
prior(s5, disgust). prior(s6, anger). prior(s7, anticipation). prior(s8, joy). prior(s9, fear).
emotion(I, E) :- scene_class(I, S), prior(S, E).
