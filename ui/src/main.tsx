import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

// No StrictMode: in development it would open the EventSource and load the list twice,
// spending two of the ten requests a minute the API allows.
createRoot(document.getElementById('root')!).render(<App />);
