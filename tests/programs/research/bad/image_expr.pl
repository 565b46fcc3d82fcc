% The recogniser's per-face distribution read for the image as a whole (the bad-spec corpus).
nn(expr, [I], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(I, E).
to8(angry, anger). to8(disgust, disgust). to8(fear, fear). to8(happy, joy). to8(sad, sadness).
to8(surprise, surprise). to8(neutral, trust).
emotion(I, E) :- expression(I, X), to8(X, E).
