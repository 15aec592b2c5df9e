"""One wheel in, WheelFacts out: the engines and what they share."""
