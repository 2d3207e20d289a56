"""Reference implementation of the card-fraud case study, in the handbook's own loop style.

The *Reproducible Machine Learning for Credit Card Fraud Detection* handbook (Le Borgne et al.),
chapters "Transaction data simulator" and "Baseline feature transformation", generates the data one
customer at a time, one day at a time, one transaction at a time, and computes the features with a
pandas `rolling` per customer and per terminal. This file restates that process plainly (written
for this benchmark, not copied) so that `bench_fraud.py` can time it beside the vectorized
`mlops_nb.fraud`. Two adaptations to pandas 3: `groupby(...).apply` no longer passes the grouping
column to the function, so the per-group loops iterate over the groups explicitly (same result), and
`to_datetime(origin=...)` is replaced by an explicit offset.

Not part of the package: slow on purpose, used only by the benchmark.
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd


def generate_customer_profiles_table(n_customers, random_state=0):
    np.random.seed(random_state)
    rows = []
    for customer_id in range(n_customers):
        x_customer_id = np.random.uniform(0, 100)
        y_customer_id = np.random.uniform(0, 100)
        mean_amount = np.random.uniform(5, 100)
        std_amount = mean_amount / 2
        mean_nb_tx_per_day = np.random.uniform(0, 4)
        rows.append([customer_id, x_customer_id, y_customer_id, mean_amount, std_amount, mean_nb_tx_per_day])
    return pd.DataFrame(rows, columns=['CUSTOMER_ID', 'x_customer_id', 'y_customer_id',
                                       'mean_amount', 'std_amount', 'mean_nb_tx_per_day'])


def generate_terminal_profiles_table(n_terminals, random_state=0):
    np.random.seed(random_state)
    rows = []
    for terminal_id in range(n_terminals):
        rows.append([terminal_id, np.random.uniform(0, 100), np.random.uniform(0, 100)])
    return pd.DataFrame(rows, columns=['TERMINAL_ID', 'x_terminal_id', 'y_terminal_id'])


def get_list_terminals_within_radius(customer_profile, x_y_terminals, r):
    x_y_customer = customer_profile[['x_customer_id', 'y_customer_id']].values.astype(float)
    dist_x_y = np.sqrt(np.sum(np.square(x_y_customer - x_y_terminals), axis=1))
    return list(np.where(dist_x_y < r)[0])


def generate_transactions_table(customer_profile, start_date="2018-04-01", nb_days=10):
    customer_transactions = []
    random.seed(int(customer_profile.CUSTOMER_ID))
    np.random.seed(int(customer_profile.CUSTOMER_ID))
    for day in range(nb_days):
        nb_tx = np.random.poisson(customer_profile.mean_nb_tx_per_day)
        for tx in range(nb_tx):
            time_tx = int(np.random.normal(86400 / 2, 20000))
            if (time_tx > 0) and (time_tx < 86400):
                amount = np.random.normal(customer_profile.mean_amount, customer_profile.std_amount)
                if amount < 0:
                    amount = np.random.uniform(0, customer_profile.mean_amount * 2)
                amount = np.round(amount, decimals=2)
                if len(customer_profile.available_terminals) > 0:
                    terminal_id = random.choice(customer_profile.available_terminals)
                    customer_transactions.append([time_tx + day * 86400, day, customer_profile.CUSTOMER_ID,
                                                  terminal_id, amount])
    customer_transactions = pd.DataFrame(customer_transactions, columns=['TX_TIME_SECONDS', 'TX_TIME_DAYS',
                                                                         'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT'])
    if len(customer_transactions) > 0:
        customer_transactions['TX_DATETIME'] = (pd.Timestamp(start_date)
                                                + pd.to_timedelta(customer_transactions['TX_TIME_SECONDS'], unit='s'))
        customer_transactions = customer_transactions[['TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT',
                                                       'TX_TIME_SECONDS', 'TX_TIME_DAYS']]
    return customer_transactions


def generate_dataset(n_customers=10000, n_terminals=1000000, nb_days=90, start_date="2018-04-01", r=5):
    customer_profiles_table = generate_customer_profiles_table(n_customers, random_state=0)
    terminal_profiles_table = generate_terminal_profiles_table(n_terminals, random_state=1)
    x_y_terminals = terminal_profiles_table[['x_terminal_id', 'y_terminal_id']].values.astype(float)
    customer_profiles_table['available_terminals'] = customer_profiles_table.apply(
        lambda x: get_list_terminals_within_radius(x, x_y_terminals=x_y_terminals, r=r), axis=1)
    customer_profiles_table['nb_terminals'] = customer_profiles_table.available_terminals.apply(len)
    parts = [generate_transactions_table(profile, start_date=start_date, nb_days=nb_days)
             for _, profile in customer_profiles_table.iterrows()]
    transactions_df = pd.concat([p for p in parts if len(p)], ignore_index=True)
    transactions_df = transactions_df.sort_values('TX_DATETIME')
    transactions_df.reset_index(inplace=True, drop=True)
    transactions_df.reset_index(inplace=True)
    transactions_df.rename(columns={'index': 'TRANSACTION_ID'}, inplace=True)
    return customer_profiles_table, terminal_profiles_table, transactions_df


def add_frauds(customer_profiles_table, terminal_profiles_table, transactions_df):
    transactions_df['TX_FRAUD'] = 0
    transactions_df['TX_FRAUD_SCENARIO'] = 0
    # scenario 1
    transactions_df.loc[transactions_df.TX_AMOUNT > 220, 'TX_FRAUD'] = 1
    transactions_df.loc[transactions_df.TX_AMOUNT > 220, 'TX_FRAUD_SCENARIO'] = 1
    # scenario 2
    for day in range(transactions_df.TX_TIME_DAYS.max()):
        compromised_terminals = terminal_profiles_table.TERMINAL_ID.sample(n=2, random_state=day)
        compromised = transactions_df[(transactions_df.TX_TIME_DAYS >= day) & (transactions_df.TX_TIME_DAYS < day + 28)
                                      & (transactions_df.TERMINAL_ID.isin(compromised_terminals))]
        transactions_df.loc[compromised.index, 'TX_FRAUD'] = 1
        transactions_df.loc[compromised.index, 'TX_FRAUD_SCENARIO'] = 2
    # scenario 3
    for day in range(transactions_df.TX_TIME_DAYS.max()):
        compromised_customers = customer_profiles_table.CUSTOMER_ID.sample(n=3, random_state=day).values
        compromised = transactions_df[(transactions_df.TX_TIME_DAYS >= day) & (transactions_df.TX_TIME_DAYS < day + 14)
                                      & (transactions_df.CUSTOMER_ID.isin(compromised_customers))]
        random.seed(day)
        index_frauds = random.sample(list(compromised.index.values), k=int(len(compromised) / 3))
        transactions_df.loc[index_frauds, 'TX_AMOUNT'] = transactions_df.loc[index_frauds, 'TX_AMOUNT'] * 5
        transactions_df.loc[index_frauds, 'TX_FRAUD'] = 1
        transactions_df.loc[index_frauds, 'TX_FRAUD_SCENARIO'] = 3
    return transactions_df


def is_weekend(tx_datetime):
    return int(tx_datetime.weekday() >= 5)


def is_night(tx_datetime):
    return int(tx_datetime.hour <= 6)


def get_customer_spending_behaviour_features(customer_transactions, windows_size_in_days=(1, 7, 30)):
    customer_transactions = customer_transactions.sort_values('TX_DATETIME')
    customer_transactions.index = customer_transactions.TX_DATETIME
    for window_size in windows_size_in_days:
        sum_amount = customer_transactions['TX_AMOUNT'].rolling(str(window_size) + 'd').sum()
        nb_tx = customer_transactions['TX_AMOUNT'].rolling(str(window_size) + 'd').count()
        customer_transactions['CUSTOMER_ID_NB_TX_' + str(window_size) + 'DAY_WINDOW'] = list(nb_tx)
        customer_transactions['CUSTOMER_ID_AVG_AMOUNT_' + str(window_size) + 'DAY_WINDOW'] = list(sum_amount / nb_tx)
    customer_transactions.index = customer_transactions.TRANSACTION_ID
    return customer_transactions


def get_count_risk_rolling_window(terminal_transactions, delay_period=7, windows_size_in_days=(1, 7, 30),
                                  feature="TERMINAL_ID"):
    terminal_transactions = terminal_transactions.sort_values('TX_DATETIME')
    terminal_transactions.index = terminal_transactions.TX_DATETIME
    nb_fraud_delay = terminal_transactions['TX_FRAUD'].rolling(str(delay_period) + 'd').sum()
    nb_tx_delay = terminal_transactions['TX_FRAUD'].rolling(str(delay_period) + 'd').count()
    for window_size in windows_size_in_days:
        nb_fraud_delay_window = terminal_transactions['TX_FRAUD'].rolling(str(delay_period + window_size) + 'd').sum()
        nb_tx_delay_window = terminal_transactions['TX_FRAUD'].rolling(str(delay_period + window_size) + 'd').count()
        nb_fraud_window = nb_fraud_delay_window - nb_fraud_delay
        nb_tx_window = nb_tx_delay_window - nb_tx_delay
        terminal_transactions[feature + '_NB_TX_' + str(window_size) + 'DAY_WINDOW'] = list(nb_tx_window)
        terminal_transactions[feature + '_RISK_' + str(window_size) + 'DAY_WINDOW'] = list(nb_fraud_window / nb_tx_window)
    terminal_transactions.index = terminal_transactions.TRANSACTION_ID
    return terminal_transactions.fillna(0)


def handbook_features(transactions_df, windows=(1, 7, 30), delay=7):
    "The handbook's feature pipeline: weekend and night flags, then one group at a time."
    transactions_df = transactions_df.copy()
    transactions_df['TX_DURING_WEEKEND'] = transactions_df.TX_DATETIME.apply(is_weekend)
    transactions_df['TX_DURING_NIGHT'] = transactions_df.TX_DATETIME.apply(is_night)
    parts = [get_customer_spending_behaviour_features(g, windows) for _, g in transactions_df.groupby('CUSTOMER_ID')]
    transactions_df = pd.concat(parts).sort_values('TX_DATETIME').reset_index(drop=True)
    parts = [get_count_risk_rolling_window(g, delay, windows) for _, g in transactions_df.groupby('TERMINAL_ID')]
    return pd.concat(parts).sort_values('TX_DATETIME').reset_index(drop=True)


def reference_make_fraud(n_customers=5000, n_terminals=10000, nb_days=183, start_date="2018-04-01", radius=5):
    "Generate the handbook's dataset, frauds included, the handbook's way."
    customers, terminals, transactions = generate_dataset(n_customers, n_terminals, nb_days, start_date, radius)
    return add_frauds(customers, terminals, transactions)
