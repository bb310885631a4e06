"""Entry-side tools (offline preview, image build): they import the program; nothing imports them."""
