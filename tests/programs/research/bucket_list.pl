% Faces lists of any length (0-5 here), walked largest face first: each face is trusted with
% one learned probability (t(_) on a non-ground head); a trusted face's expression goes to a
% valence/arousal bucket by a fixed table, and each bucket's Emo8 emotion is a learnable
% annotated disjunction (4 x 8 t()), drawn per face; no trusted face: the scene decides.
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).
nn(scene_emotion, [I], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: scene_says(I, E).

bucket(happy, pos_high). bucket(surprise, pos_high). bucket(neutral, pos_low).
bucket(angry, neg_high). bucket(fear, neg_high). bucket(disgust, neg_low). bucket(sad, neg_low).

t(_)::bucket_emotion(F, pos_high, joy); t(_)::bucket_emotion(F, pos_high, trust); t(_)::bucket_emotion(F, pos_high, fear); t(_)::bucket_emotion(F, pos_high, surprise); t(_)::bucket_emotion(F, pos_high, sadness); t(_)::bucket_emotion(F, pos_high, disgust); t(_)::bucket_emotion(F, pos_high, anger); t(_)::bucket_emotion(F, pos_high, anticipation).
t(_)::bucket_emotion(F, pos_low, joy); t(_)::bucket_emotion(F, pos_low, trust); t(_)::bucket_emotion(F, pos_low, fear); t(_)::bucket_emotion(F, pos_low, surprise); t(_)::bucket_emotion(F, pos_low, sadness); t(_)::bucket_emotion(F, pos_low, disgust); t(_)::bucket_emotion(F, pos_low, anger); t(_)::bucket_emotion(F, pos_low, anticipation).
t(_)::bucket_emotion(F, neg_high, joy); t(_)::bucket_emotion(F, neg_high, trust); t(_)::bucket_emotion(F, neg_high, fear); t(_)::bucket_emotion(F, neg_high, surprise); t(_)::bucket_emotion(F, neg_high, sadness); t(_)::bucket_emotion(F, neg_high, disgust); t(_)::bucket_emotion(F, neg_high, anger); t(_)::bucket_emotion(F, neg_high, anticipation).
t(_)::bucket_emotion(F, neg_low, joy); t(_)::bucket_emotion(F, neg_low, trust); t(_)::bucket_emotion(F, neg_low, fear); t(_)::bucket_emotion(F, neg_low, surprise); t(_)::bucket_emotion(F, neg_low, sadness); t(_)::bucket_emotion(F, neg_low, disgust); t(_)::bucket_emotion(F, neg_low, anger); t(_)::bucket_emotion(F, neg_low, anticipation).

t(0.4)::trust_face(F).

emotion([F|Rest], I, E) :- trust_face(F), expression(F, X), bucket(X, B), bucket_emotion(F, B, E).
emotion([F|Rest], I, E) :- \+ trust_face(F), emotion(Rest, I, E).
emotion([], I, E) :- scene_says(I, E).
