% A head over an atom argument (the bad-spec corpus): the mood, an atom, needs a one-hot domain.
nn(scene_mood, [I], M, [calm_pos, calm_neg, tense_pos, tense_neg]) :: mood(I, M).
nn(mood_to_emotion, [M], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: mood_emotion(M, E).
emotion(I, E) :- mood(I, M), mood_emotion(M, E).
