% A valence rule pair meeting at a float boundary, as ProbLog reads it: D is abs(5.4 - 2.4) gives
% 3.0 after ProbLog's rounding, so D =< 3 holds, while the inline abs(5.4 - 2.4) > 3 holds too
% (3.0000000000000004): for a happy face in a gloomy scene both rules fire, and the answers over
% Emo8 sum to more than 1 (the answer-mass check's example). It trains all the same.
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).
nn(mood_net, [I], M, [bright, gloomy]) :: mood(I, M).

valence(angry, 2.0). valence(disgust, 2.5). valence(fear, 2.2). valence(happy, 5.4).
valence(sad, 1.8). valence(surprise, 4.0). valence(neutral, 3.5).
valence(bright, 4.6). valence(gloomy, 2.4).

agree(angry, anger). agree(disgust, disgust). agree(fear, fear). agree(happy, joy).
agree(sad, sadness). agree(surprise, surprise). agree(neutral, trust).
0.4::mood_emotion(bright, joy); 0.3::mood_emotion(bright, anticipation); 0.3::mood_emotion(bright, trust).
0.4::mood_emotion(gloomy, sadness); 0.3::mood_emotion(gloomy, fear); 0.3::mood_emotion(gloomy, anger).

emotion([F|_], I, E) :- expression(F, X), valence(X, FV), mood(I, M), valence(M, SV),
    D is abs(FV - SV), D =< 3, agree(X, E).
emotion([F|_], I, E) :- expression(F, X), valence(X, FV), mood(I, M), valence(M, SV),
    abs(FV - SV) > 3, mood_emotion(M, E).
emotion([], I, E) :- mood(I, M), mood_emotion(M, E).
