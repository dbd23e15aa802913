"""Media synthesis for kf2v-mock: output sizing and offline clip rendering."""
